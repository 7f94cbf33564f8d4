FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY bench ./bench
RUN pip install --no-cache-dir . && useradd --system oee
USER oee
ENV OEE_HOST=0.0.0.0
ENTRYPOINT ["oee"]
