FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY worker ./worker
COPY tasks ./tasks
COPY scheduler ./scheduler
COPY cli ./cli
COPY sandbox ./sandbox
COPY api ./api
# With Flower (ctq[flower]): the compose file's flower service runs `ctq flower`.
RUN pip install --no-cache-dir ".[flower]" \
    && useradd --create-home --uid 1000 ctq \
    && mkdir -p /data && chown ctq /data
USER ctq
ENV CTQ_DATA_DIR=/data
CMD ["ctq", "worker"]
