package testenv

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// AlarmProxy forwards AMQP connections to a real RabbitMQ and can make it look as if
// the broker raised a resource alarm: Alarm sends connection.blocked to every client
// connected through it and ClearAlarm sends connection.unblocked, the frames RabbitMQ
// itself sends when memory or disk runs low. A real alarm is node-wide and would
// block every test sharing the broker (`make chaos` raises one for real).
type AlarmProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[*alarmConn]struct{}
}

type alarmConn struct {
	client, server net.Conn
	mu             sync.Mutex // serialises writes to client: forwarded frames and injected ones
	open           bool       // the handshake is over (the server sent connection.open-ok)
}

// NewAlarmProxy listens on a free loopback port and forwards to target (host:port);
// it is closed when the test ends.
func NewAlarmProxy(t testing.TB, target string) *AlarmProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: alarm proxy listen: %v", err)
	}
	p := &AlarmProxy{ln: ln, target: target, conns: map[*alarmConn]struct{}{}}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.client.Close()
			c.server.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// Addr is the host:port clients should connect to.
func (p *AlarmProxy) Addr() string { return p.ln.Addr().String() }

// Alarm tells every open connection that the broker blocks publishing for reason.
func (p *AlarmProxy) Alarm(reason string) {
	payload := binary.BigEndian.AppendUint16(nil, 10)    // class connection
	payload = binary.BigEndian.AppendUint16(payload, 60) // method blocked
	payload = append(payload, byte(len(reason)))
	p.inject(append(payload, reason...))
}

// ClearAlarm tells every open connection that publishing is allowed again.
func (p *AlarmProxy) ClearAlarm() {
	p.inject([]byte{0, 10, 0, 61}) // connection.unblocked
}

func (p *AlarmProxy) inject(payload []byte) {
	frame := []byte{1, 0, 0} // method frame on channel 0
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
	frame = append(append(frame, payload...), 0xCE)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.mu.Lock()
		if c.open {
			_, _ = c.client.Write(frame)
		}
		c.mu.Unlock()
	}
}

func (p *AlarmProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(client)
	}
}

func (p *AlarmProxy) forward(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	c := &alarmConn{client: client, server: server}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	go func() {
		_, _ = io.Copy(server, client)
		server.Close()
	}()
	c.frames() // until either side closes
	client.Close()
	server.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// frames copies the server's frames to the client one whole frame at a time, so an
// injected frame never lands inside another.
func (c *alarmConn) frames() {
	header := make([]byte, 7)
	for {
		if _, err := io.ReadFull(c.server, header); err != nil {
			return
		}
		frame := make([]byte, 7+int(binary.BigEndian.Uint32(header[3:]))+1)
		copy(frame, header)
		if _, err := io.ReadFull(c.server, frame[7:]); err != nil {
			return
		}
		c.mu.Lock()
		_, err := c.client.Write(frame)
		// connection.open-ok (class 10, method 41) ends the handshake.
		if frame[0] == 1 && len(frame) >= 11 && binary.BigEndian.Uint16(frame[7:]) == 10 && binary.BigEndian.Uint16(frame[9:]) == 41 {
			c.open = true
		}
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}
