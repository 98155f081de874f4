package agent

func peerPID(int) int { return -1 }
