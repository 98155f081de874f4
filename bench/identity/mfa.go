package main

import (
	"context"
	"net/http"
	"time"

	"github.com/pquerna/otp/totp"

	"moat/internal/api"
)

// mfaAdmin opens the admin credentials in dir, enrols a TOTP authenticator
// through the API as an administrator would, logs in (the session is kept
// in dir, where the CLI finds it too) and answers the server's later
// requests for a code from it: registrations, join tokens and revocations
// are sensitive calls. Logging in before any of them lets calls made at
// once share the one session.
func mfaAdmin(ctx context.Context, addr, dir string) (*api.AdminClient, error) {
	var secret string
	s, err := api.NewAdminSession(addr, dir, api.SessionConfig{Code: func(context.Context) (string, error) {
		// The next step's code: the current one confirmed the enrolment.
		return totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	}})
	if err != nil {
		return nil, err
	}
	var en api.MFAEnrollment
	if err := s.Call(ctx, http.MethodPost, api.PathMFAEnroll, struct{}{}, &en); err != nil {
		s.Close()
		return nil, err
	}
	secret = en.Secret
	first, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Call(ctx, http.MethodPost, api.PathMFAConfirm, api.MFACode{Code: first}, nil); err != nil {
		s.Close()
		return nil, err
	}
	// The next step's code: the current one confirmed the enrolment.
	next, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if err == nil {
		_, err = s.Login(ctx, next)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
