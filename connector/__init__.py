"""Reference hospital connector (runs in the hospital DMZ, outbound HTTPS only; no Django).

    python -m connector push --url https://dc.example --api-key KEY --format ss-mix2 PATIENT_FOLDER
    python -m connector pull --url https://dc.example --api-key KEY --out DIR [--since ISO]

`push` sends one patient's extract and prints the one-time launch URL for the EMR button to open. `pull` fetches
confirmed notifications of the hospital (FHIR document Bundle and PDF) to store in the chart.
"""
