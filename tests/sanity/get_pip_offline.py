"""Stand-in for the get-pip.py bootstrap script that ansible-test downloads from a host this
machine cannot reach. It puts pip into ansible-test's fresh venv from the interpreter's own
bundled wheel (ensurepip), then installs what ansible-test asked for from the package index.
ansible-test runs pip with a cleaned environment, and the bundled pip does not use the system
trust store: the system CA bundle is passed explicitly when there is one.
`make sanity` copies this file to ~/.ansible/test/cache/get_pip_<version>.py."""

import ensurepip
import os
import subprocess
import sys

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

ensurepip.bootstrap()
# get-pip.py options that plain `pip install` does not know.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if os.path.exists(CA_BUNDLE):
    args = ["--cert", CA_BUNDLE, *args]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
