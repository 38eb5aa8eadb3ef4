"""Long-running demo jobs and the views that start them."""
