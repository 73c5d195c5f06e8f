"""`not CMD ARGS...` for RUN lines: runs CMD and succeeds exactly when it fails (exit status != 0)."""

import subprocess
import sys

if __name__ == "__main__":
    sys.exit(0 if subprocess.run(sys.argv[1:]).returncode != 0 else 1)
