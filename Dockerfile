# The provisioner, the portal and the reference teleservices (one image, several commands).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# DejaVu Sans, embedded in the portal's PDF documents (portal/documents.py).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY provisioner provisioner
COPY portal portal
COPY teleservice teleservice
COPY realm realm
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 cimr && mkdir /app/var && chown cimr /app/var
USER cimr
EXPOSE 8000
CMD ["gunicorn", "-w", "4", "-b", "0.0.0.0:8000", "portal:create_app()"]
