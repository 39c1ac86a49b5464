FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HERSYS_VAR_DIR=/var/lib/hersys
WORKDIR /app
# The Japanese font embedded in the notification PDFs (PDF_FONT_PATH).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-ipaexfont-gothic && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /app hersys && mkdir -p /var/lib/hersys && chown hersys /var/lib/hersys
USER hersys
EXPOSE 8000
CMD ["gunicorn", "assist_portal.wsgi", "-b", "0.0.0.0:8000", "--workers", "4", "--threads", "4"]
