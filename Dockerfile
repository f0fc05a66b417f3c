# One image for every service. CPU by default; build with --build-arg EXTRAS=gpu for the CUDA/cuDNN wheels
# (tensorflow[and-cuda]), which the `train` service uses through an NVIDIA device reservation.
FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 espeak-ng && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY asr ./asr
COPY configs ./configs
COPY pipelines ./pipelines
COPY recipes ./recipes
RUN pip install ".${EXTRAS:+[$EXTRAS]}"
ENTRYPOINT ["asr"]
CMD ["--help"]
