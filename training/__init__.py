"""Training toolkit: fit the three networks (`training.train`), evaluate them (`training.evaluate`) and regenerate
the study's tables and figures (`training.report`). Uses BraTSXAILib for loading, preprocessing, models and metrics."""
