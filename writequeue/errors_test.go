package writequeue

import (
	"errors"
	"fmt"
	"testing"
)

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("bad batch")
	perm := Permanent(base)

	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if perm.Error() != base.Error() {
		t.Errorf("Permanent(err).Error() = %q, want %q", perm.Error(), base.Error())
	}
	if !errors.Is(perm, base) {
		t.Error("Permanent(err) does not unwrap to err")
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{perm, true},
		{fmt.Errorf("writing: %w", perm), true},
		{&DropError{Attempts: 1, Err: perm}, true},
		{base, false},
		{nil, false},
		{&PanicError{Value: "boom"}, false}, // permanence comes from the Permanent wrapper
	} {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestDropError(t *testing.T) {
	t.Parallel()
	err := &DropError{Attempts: 3, Err: fmt.Errorf("writing: %w", errTransient)}
	if want := "writequeue: batch dropped after 3 attempt(s): writing: transient failure"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, errTransient) {
		t.Error("DropError does not unwrap to its Err")
	}
}
