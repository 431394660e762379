#!/bin/sh
echo "built on $(uname -m)"
