package chatapi

// The argument and reply types of api.go carry msgpack encoders generated
// by tinylib/msgp (api_msgp.go), which rmi.Marshal and rmi.Unmarshal use
// instead of go-msgpack's reflection: every post crosses them several
// times (Post, Forward, Deliver, Sync), and the generated code is several
// times faster. The encoding is the same either way (codec_test.go checks
// both directions), so nothing else changes. After editing a type in
// api.go, run `go generate ./server/chatapi`.

//go:generate go tool msgp -file api.go -o api_msgp.go -io=false -tests=false -d "ignore Stub PeerStub CallbackStub Message"
