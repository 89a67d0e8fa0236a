/** Longest Unix socket path: sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
export const MAX_UNIX_SOCKET_PATH = 107;
