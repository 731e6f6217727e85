"""Results into things people read: text and CSV tables, charts, matplotlib figures, the HTML report."""
