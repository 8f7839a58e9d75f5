"""Business logic. Services take `*, session`, flush, and leave the commit to their caller."""
