#!/bin/sh
echo "built on $(uname -m) at stage one and only"
