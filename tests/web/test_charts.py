"""The server-drawn SVG bar charts: bars in proportion, stacked or side by side, tooltips and a
legend, an empty state in words, and every text escaped."""

import xml.etree.ElementTree as ET

import pytest

from zerg.web.charts import PLOT_H, Series, bar_chart, nice_ceiling

DAYS = ["2026-11-28", "2026-11-29", "2026-11-30"]


def parse(markup: str) -> ET.Element:
    # The chart is well-formed XML: an unescaped `<` or `&` anywhere would fail here.
    return ET.fromstring(markup)


def bars(figure: ET.Element) -> list[ET.Element]:
    return figure.findall(".//rect")


def height(rect: ET.Element) -> float:
    return float(rect.attrib["height"])


def tooltip(rect: ET.Element) -> str:
    title = rect.find("title")
    assert title is not None and title.text is not None
    return title.text


def test_bar_heights_are_proportional_to_the_values() -> None:
    figure = parse(bar_chart("t", "Tokens", DAYS, [Series("tokens", "input", [100, 250, 400])]))

    heights = [height(rect) for rect in bars(figure)]
    assert heights[1] / heights[0] == pytest.approx(2.5)
    assert heights[2] / heights[0] == pytest.approx(4)
    # The axis tops out at the next round number: 500, so the highest bar fills 4/5.
    assert heights[2] == pytest.approx(PLOT_H * 400 / 500)
    assert [tooltip(rect) for rect in bars(figure)] == [
        "2026-11-28: tokens 100",
        "2026-11-29: tokens 250",
        "2026-11-30: tokens 400",
    ]


def test_stacked_bars_sit_on_each_other_and_zero_draws_nothing() -> None:
    series = [Series("succeeded", "succeeded", [3, 0, 1]), Series("failed", "failed", [1, 2, 0])]
    figure = parse(bar_chart("runs", "Runs", DAYS, series, stacked=True, integer=True))

    rects = bars(figure)
    assert [tooltip(r) for r in rects] == [
        "2026-11-28: succeeded 3",
        "2026-11-28: failed 1",
        "2026-11-29: failed 2",
        "2026-11-30: succeeded 1",
    ]
    first, on_top = rects[0], rects[1]
    assert float(on_top.attrib["y"]) + height(on_top) == pytest.approx(float(first.attrib["y"]))
    assert first.attrib["x"] == on_top.attrib["x"]
    # The day's total (4) is the highest column: the axis is 4, and the column fills it.
    assert height(first) + height(on_top) == pytest.approx(PLOT_H)
    assert height(first) == pytest.approx(3 * height(on_top))


def test_side_by_side_bars_share_the_scale() -> None:
    series = [Series("average", "average", [1000, None]), Series("longest", "longest", [4000, 0])]
    figure = parse(bar_chart("d", "Duration", DAYS[:2], series))

    average, longest = bars(figure)
    assert float(average.attrib["x"]) < float(longest.attrib["x"])
    assert height(longest) == pytest.approx(4 * height(average))


def test_the_chart_is_an_image_with_a_title_a_description_and_a_legend() -> None:
    series = [Series("input", "input", [1, 2, 3]), Series("output", "output", [1, 1, 1])]
    figure = parse(bar_chart("tokens", "Tokens per day", DAYS, series, stacked=True))

    svg = figure.find("svg")
    assert svg is not None
    assert svg.attrib["role"] == "img"
    assert svg.attrib["width"] == "100%" and svg.attrib["viewBox"].startswith("0 0 ")
    title_id, desc_id = svg.attrib["aria-labelledby"].split()
    assert svg.find(f"title[@id='{title_id}']").text == "Tokens per day"  # type: ignore[union-attr]
    assert "2026-11-28 to 2026-11-30" in (svg.find(f"desc[@id='{desc_id}']").text or "")  # type: ignore[union-attr]
    assert ["".join(li.itertext()) for li in figure.findall(".//ul/li")] == ["input", "output"]
    cells = [td.text for td in figure.findall(".//details//tbody/tr[3]/td")]
    assert cells == ["3", "1"]


def test_all_zero_or_missing_values_say_so_in_words() -> None:
    for values in ([0, 0, 0], [None, None, None]):
        markup = bar_chart("e", "Cost", DAYS, [Series("cost", "cost", values)], empty="No cost.")
        figure = parse(markup)
        assert figure.find(".//svg") is None
        assert figure.findtext("p") == "No cost."
        assert figure.findtext("figcaption") == "Cost"


def test_every_text_is_escaped() -> None:
    evil = '<script>alert("x")</script> & co'
    series = [Series(evil, 'bad" onmouseover="x', [1, 2, 3])]
    markup = str(bar_chart("x", evil, [evil, "b", "c"], series, tick_labels=[evil, "b", "c"]))

    assert "<script>" not in markup
    figure = parse(markup)
    assert figure.findtext("figcaption") == evil
    assert tooltip(bars(figure)[0]) == f"{evil}: {evil} 1"
    assert "onmouseover" not in bars(figure)[0].attrib


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(1, 1), (1.2, 2), (3, 5), (2.2, 2.5), (7, 10), (40, 50), (0.03, 0.05), (120, 200)],
)
def test_the_axis_ends_at_a_round_number(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


@pytest.mark.parametrize(
    ("count", "ceiling"), [(1, 2), (3, 4), (4, 4), (9, 10), (23, 30), (410, 500)]
)
def test_a_count_axis_ends_at_an_even_number(count: int, ceiling: int) -> None:
    assert nice_ceiling(count, integer=True) == ceiling
