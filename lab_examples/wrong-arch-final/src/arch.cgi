#!/bin/sh
# GET /cgi-bin/arch → the architecture this container runs on.
printf 'Content-Type: text/plain\r\n\r\n'
echo "arch=$(uname -m) host=$(hostname)"
