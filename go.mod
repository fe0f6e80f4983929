module github.com/distchat/distchat

go 1.26.8

require (
	github.com/benbjohnson/clock v1.3.5
	github.com/coder/websocket v1.8.15
	github.com/hashicorp/go-msgpack/v2 v2.1.5
	github.com/hashicorp/yamux v0.1.2
	github.com/spf13/pflag v1.1.0
	go.etcd.io/bbolt v1.5.0
	golang.org/x/crypto v0.59.0
	golang.org/x/term v0.48.0
	pgregory.net/rapid v1.3.0
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/chromedp/chromedp v0.23.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
