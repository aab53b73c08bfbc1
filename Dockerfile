# Two stages: the first installs chronox-stream into a virtualenv, the second copies only
# that virtualenv into a clean image that runs as an unprivileged user.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/chronox
COPY . .
# The compose file runs the simulator from this image too, so it has the [sim] extra; a
# worker-only image: `docker build --build-arg EXTRAS= .` (README "Lean install").
ARG EXTRAS="[sim]"
RUN /opt/chronox/bin/pip install --no-cache-dir -c constraints.txt ".${EXTRAS}"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 chronox
COPY --from=build /opt/chronox /opt/chronox
ENV PATH=/opt/chronox/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CHRONOX_DATA_DIR=/home/chronox/data \
    CHRONOX_SIM_DATA_DIR=/home/chronox/sim
USER chronox
WORKDIR /home/chronox
EXPOSE 6066
CMD ["chronox", "worker"]
