package chaos

import (
	"os"
	"os/exec"
	"syscall"
)

// child is a process a scenario started and may kill: in a process group of its own
// (so a server's helpers die with it), its output appended to a log file.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startChild starts cmd with stdout (unless already set) and stderr appended to log.
func startChild(cmd *exec.Cmd, log string) (*child, error) {
	out, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(c.exited) }()
	return c, nil
}

// alive reports whether the process is still running (false for a nil child).
func (c *child) alive() bool {
	if c == nil {
		return false
	}
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// signalGroup sends sig to the process and every process of its group.
func (c *child) signalGroup(sig syscall.Signal) { _ = syscall.Kill(-c.cmd.Process.Pid, sig) }
