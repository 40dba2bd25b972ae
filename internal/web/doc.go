// Package web serves kaopu's HTTP side: GET /healthz (200 once every
// listener is up) and GET /metrics (Prometheus text format). The admin UI,
// REST API and browser phone will live here too.
package web
