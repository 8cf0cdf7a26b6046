"""Event stories: articles about one event, joined even when they share no passage."""
