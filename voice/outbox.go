package voice

import "sync"

// outbox hands one participant's outgoing signals to its send function, in
// order, from a goroutine of its own: the SFU never calls send while it
// holds a lock, and a slow send delays only its own participant.
type outbox struct {
	send func(Signal)

	mu      sync.Mutex
	queue   []Signal
	closing bool
	after   func()        // runs once the last signal is sent (close)
	wake    chan struct{} // has a token when queue or closing changed
	done    chan struct{} // closed when the goroutine has ended
}

// newOutbox starts the goroutine that calls send.
func newOutbox(send func(Signal)) *outbox {
	o := &outbox{send: send, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go o.run()
	return o
}

// put queues sig; it does not block. After close, it does nothing. The
// queue needs no bound: the SFU sends an offer only once the last one is
// answered, so at most one offer and a bye ever wait here.
func (o *outbox) put(sig Signal) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing {
		return
	}
	o.queue = append(o.queue, sig)
	o.notify()
}

// close sends what is queued, then last (when its Kind is not empty),
// then runs after (when not nil), and ends the goroutine. It does not
// wait for it (see wait), so it may be called from a send: a signal whose
// answer removes the participant at once.
func (o *outbox) close(last Signal, after func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing {
		return
	}
	if last.Kind != "" {
		o.queue = append(o.queue, last)
	}
	o.closing, o.after = true, after
	o.notify()
}

// wait returns when the goroutine has ended.
func (o *outbox) wait() { <-o.done }

func (o *outbox) notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) run() {
	defer close(o.done)
	for {
		<-o.wake
		o.mu.Lock()
		batch, closing, after := o.queue, o.closing, o.after
		o.queue = nil
		o.mu.Unlock()
		for _, sig := range batch {
			o.send(sig)
		}
		if closing {
			if after != nil {
				after()
			}
			return
		}
	}
}
