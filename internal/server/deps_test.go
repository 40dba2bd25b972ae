package server

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/kaopu/kaopu/internal/"

// allowedDeps lists, for each internal package, the internal packages it
// may import: dependencies point down the data flow (edge -> handlers ->
// auth/location -> store), and nothing below imports the composition root.
var allowedDeps = map[string][]string{
	"cli":             {"server", "config", "account", "cdr", "store", "store/sqlite", "version", "ua", "media/sound", "money", "rating", "billing", "dialplan", "trunk", "callingcard", "pbx", "voicemail"},
	"server":          {"config", "account", "auth", "call", "cdr", "media", "registrar", "sipx", "store", "store/sqlite", "version", "web", "dialplan", "trunk", "billing", "ivr", "callingcard", "conference", "pbx", "sipdns", "voicemail"},
	"call":            {"auth", "cdr", "dialplan", "media", "media/codec", "sdpx", "sipx", "store", "ivr", "sipdns"},
	"dialplan":        {},                                      // pure functions on dial strings
	"trunk":           {"call", "dialplan", "store", "sipdns"}, // routes and DIDs decide; call carries
	"sipdns":          {},                                      // RFC 3263 server location: DNS only, no SIP
	"sipdns/dnstest":  {},                                      // a DNS server for tests
	"cdr":             {"store"},
	"sipx":            {},
	"registrar":       {"auth", "store"},
	"auth":            {},
	"account":         {"store"},
	"config":          {},
	"store":           {"money"},
	"store/sqlite":    {"store", "money"},
	"money":           {}, // exact decimal amounts
	"rating":          {"money", "store"},
	"billing":         {"money", "rating", "store"},
	"web":             {},
	"media":           {}, // media never imports SIP code
	"media/mediatest": {"media"},
	"media/codec":     {},                                                          // pure signal processing: no SIP, no sockets
	"media/sound":     {"media/codec"},                                             // the sound card; no SIP
	"media/dtmf":      {},                                                          // RFC 4733 events; no SIP, no sockets
	"media/wav":       {},                                                          // audio files
	"ivr":             {"media", "media/codec", "media/dtmf", "media/wav", "sdpx"}, // media applications' endpoint; no SIP
	"callingcard":     {"ivr", "store", "money", "billing"},                        // the calling-card service; no SIP
	"conference":      {"ivr", "store", "media/codec"},                             // the conference bridge; no SIP
	"pbx":             {"ivr", "media/codec", "media/wav", "store"},                // ring groups and IVR menus; no SIP
	"voicemail":       {"ivr", "media/wav", "store"},                               // mailboxes and message-summary bodies; no SIP
	"ua":              {"media/codec", "media/dtmf", "media/wav", "sdpx"},
	"sdpx":            {}, // SDP between call and media; imports neither
	"version":         {},
}

func TestDependenciesPointDown(t *testing.T) {
	root := filepath.Join("..")
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		allowed, known := allowedDeps[pkg]
		if !known {
			if !seen["?"+pkg] {
				t.Errorf("package %s is not in allowedDeps: add it with the packages it may import", pkg)
			}
			seen["?"+pkg] = true
			return nil
		}
		seen[pkg] = true
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, module) {
				continue
			}
			dep := strings.TrimPrefix(p, module)
			ok := false
			for _, a := range allowed {
				ok = ok || a == dep
			}
			if !ok {
				t.Errorf("%s imports %s, which points against the data flow", path, dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowedDeps {
		if !seen[pkg] {
			t.Errorf("allowedDeps names %s, which has no Go files", pkg)
		}
	}
}
