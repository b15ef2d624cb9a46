"""Data: training views and collators, and readers of local data sets."""
