"""The hospital connector: installed in the hospital DMZ by its IT department, outbound HTTPS only, no Django.

It extracts the notification items inside the hospital (`mapping`) and sends only those (別紙1 ②), opens the
form from the EMR button (`launch`), writes confirmed notifications back into the chart — a per-patient folder and
SS-MIX2 extended storage — with a local queue while the data centre is unreachable (`watch`), and prints the paper
form from the local extract when it cannot be reached at all (`print`). See `__main__` for the command line,
`config` for the configuration file, `build` for the single-file installable (`hersys-connector.pyz`).
"""
