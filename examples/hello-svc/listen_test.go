package main

import "testing"

func TestSocketActivated(t *testing.T) {
	const pid = 4242
	cases := []struct {
		name    string
		env     map[string]string
		want    int
		wantErr bool
	}{
		{"not activated", nil, 0, false},
		{"ours", map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "4242"}, 1, false},
		{"no pid given", map[string]string{"LISTEN_FDS": "1"}, 1, false},
		{"two sockets", map[string]string{"LISTEN_FDS": "2", "LISTEN_PID": "4242"}, 2, false},
		{"another process's", map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "1"}, 0, false},
		// Bad LISTEN_FDS meant for someone else is none of our business.
		{"another process's, bad fds", map[string]string{"LISTEN_FDS": "x", "LISTEN_PID": "1"}, 0, false},
		{"bad pid", map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "me"}, 0, true},
		{"bad fds", map[string]string{"LISTEN_FDS": "x"}, 0, true},
		{"zero fds", map[string]string{"LISTEN_FDS": "0", "LISTEN_PID": "4242"}, 0, false},
		{"negative fds", map[string]string{"LISTEN_FDS": "-1"}, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := socketActivated(envMap(c.env), pid)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if n != c.want {
				t.Fatalf("n = %d, want %d", n, c.want)
			}
		})
	}
}
