"""Results: result records collected from runs/ (`records`), the one aggregation over seeds and every
summary the reports show (`aggregate`), and merging records from several machines (`merge`)."""
