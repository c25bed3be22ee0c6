#!/bin/sh
# Makes a self-signed test certificate for localhost and 127.0.0.1 with openssl: DIRECTORY/cert.pem and
# DIRECTORY/key.pem (valid for 2 days). The TLS tests of the Event Hubs client and of the eventhubs source use it,
# so that both trust the same kind of certificate.
# Usage: test_certificate.sh DIRECTORY
set -eu
directory="$1"
exec openssl req -x509 -newkey rsa:2048 -nodes -keyout "$directory/key.pem" -out "$directory/cert.pem" -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
