package webhooks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
)

// Why a delivery failed, as the outbox keeps it and the API shows it to editors and
// admins, besides "HTTP <status>" and "HTTP <3xx>: redirect not followed". A reason
// says what went wrong, never what lies behind the address: the raw error of a
// connection ("connection refused" on one port, a timeout on the next) would let
// whoever configures a webhook map the network lift can reach. The whole error goes
// to lift's log only.
const (
	ReasonNotAllowed  = "address not allowed"
	ReasonTimeout     = "timeout"
	ReasonDNS         = "name not resolved"
	ReasonTLS         = "TLS handshake failed"
	ReasonConnection  = "connection failed"
	ReasonInterrupted = "interrupted (lift was stopping)"
	// ReasonHidden is all viewers are shown, and what a stored reason that is not
	// one of these (a last error written by an older lift) is shown as.
	ReasonHidden = "delivery failed"
)

var (
	reasons = map[string]bool{ReasonNotAllowed: true, ReasonTimeout: true, ReasonDNS: true,
		ReasonTLS: true, ReasonConnection: true, ReasonInterrupted: true, ReasonHidden: true}
	statusReason = regexp.MustCompile(`^HTTP [1-5][0-9][0-9](: redirect not followed)?$`)
)

// Reason reduces the error of a failed delivery to one of the reasons above.
func Reason(err error) string {
	var (
		status *statusError
		dnsErr *net.DNSError
		netErr net.Error
		urlErr *url.Error
		cert   *tls.CertificateVerificationError
		record tls.RecordHeaderError
		alert  tls.AlertError
	)
	switch {
	case errors.As(err, &status):
		if status.code >= 300 && status.code <= 399 {
			return fmt.Sprintf("HTTP %d: redirect not followed", status.code)
		}
		return fmt.Sprintf("HTTP %d", status.code)
	case errors.Is(err, ErrAddressNotAllowed):
		return ReasonNotAllowed
	case errors.Is(err, context.Canceled):
		return ReasonInterrupted
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout
	case errors.As(err, &dnsErr):
		return ReasonDNS
	case errors.As(err, &cert), errors.As(err, &record), errors.As(err, &alert):
		return ReasonTLS
	case errors.As(err, &urlErr): // any other failure of the request
		return ReasonConnection
	}
	return ReasonHidden
}

// ShownReason is what the API shows of a stored reason: viewers (detailed false)
// see ReasonHidden only; editors and admins the stored reason if Reason could have
// given it, else ReasonHidden.
func ShownReason(stored string, detailed bool) string {
	if detailed && (reasons[stored] || statusReason.MatchString(stored)) {
		return stored
	}
	return ReasonHidden
}
