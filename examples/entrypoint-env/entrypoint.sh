#!/bin/sh
# Render the web server's configuration and page from environment variables, then become
# the server. Any other command (`docker run IMAGE sh`) runs instead, after the rendering.
set -eu

: "${APP_PORT:=8080}"
: "${APP_GREETING:=Hello}"
: "${APP_NAME:=sampan}"
: "${APP_DOCROOT:=/srv/www}"

case "$APP_PORT" in
    ''|*[!0-9]*) echo "entrypoint: APP_PORT must be a port number, got '$APP_PORT'" >&2; exit 64 ;;
esac
if [ "$APP_PORT" -lt 1 ] || [ "$APP_PORT" -gt 65535 ]; then
    echo "entrypoint: APP_PORT out of range: $APP_PORT" >&2
    exit 64
fi

# Values go into HTML: escape them so an env var cannot inject markup.
esc() { printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }

mkdir -p "$APP_DOCROOT"
cat > /etc/httpd.conf <<EOF
# rendered by $0 from APP_* environment variables
I:index.html
E404:$APP_DOCROOT/404.html
.txt:text/plain
EOF

cat > "$APP_DOCROOT/index.html" <<EOF
<!doctype html>
<html><head><title>$(esc "$APP_NAME")</title></head>
<body>
<h1>$(esc "$APP_GREETING"), $(esc "$APP_NAME")!</h1>
<p>Served by busybox httpd on port $APP_PORT.</p>
</body></html>
EOF
printf 'Not here.\n' > "$APP_DOCROOT/404.html"
printf 'port=%s\ngreeting=%s\nname=%s\n' "$APP_PORT" "$APP_GREETING" "$APP_NAME" > "$APP_DOCROOT/config.txt"

if [ "$#" -eq 0 ] || [ "$1" = httpd ]; then
    [ "$#" -gt 0 ] && shift
    echo "entrypoint: serving $APP_DOCROOT on port $APP_PORT"
    exec httpd -f -v -p "$APP_PORT" -h "$APP_DOCROOT" -c /etc/httpd.conf "$@"
fi
exec "$@"
