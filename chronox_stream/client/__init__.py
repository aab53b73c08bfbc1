"""Client-side commands: producing requests, following them, status and the demo."""
