FROM python:3.11-slim
WORKDIR /app
COPY . .
# The compose file runs the simulator from this image too: it needs the [sim] extra.
RUN pip install --no-cache-dir -c constraints.txt '.[sim]'
CMD ["chronox", "worker"]
