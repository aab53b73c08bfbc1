"""The worker's machinery: the Faust app, the batch loop, topic and key names, retries."""
