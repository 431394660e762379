#!/bin/sh
# Runs on the build platform and writes the app for the target architecture given in $1.
set -eu
mkdir -p "$2"
printf '#!/bin/sh\necho "app built for %s on $(uname -m)"\n' "$1" > "$2/app.sh"
chmod +x "$2/app.sh"
