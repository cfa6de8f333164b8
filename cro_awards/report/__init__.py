"""The HTML report (html, laid out by templates/report.html.j2)."""
