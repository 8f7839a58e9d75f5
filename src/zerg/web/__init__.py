"""The dashboard: server-rendered pages at `/`, their forms, and their static assets."""
