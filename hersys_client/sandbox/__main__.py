"""``python -m hersys_client.sandbox --host 127.0.0.1 --port 8443 --pki-dir DIR --db FILE``"""

from .server import main

raise SystemExit(main())
