import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * Open connections and how many requests each has in flight. Node's closeIdleConnections()
 * spares a connection that never carried a request (undici opens one after an aborted call),
 * which would hold close() for the whole grace period; this sees those too.
 */
export class ConnectionTracker {
  private readonly inFlight = new Map<Socket, number>();

  constructor(server: Server) {
    server.on("connection", (socket: Socket) => {
      this.inFlight.set(socket, 0);
      socket.once("close", () => this.inFlight.delete(socket));
    });
  }

  track(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    this.inFlight.set(socket, (this.inFlight.get(socket) ?? 0) + 1);
    res.once("close", () => {
      const n = this.inFlight.get(socket);
      if (n !== undefined) this.inFlight.set(socket, n - 1);
    });
  }

  /** Destroys every connection with no request in flight (busy ones close after their response). */
  destroyIdle(): void {
    for (const [socket, n] of this.inFlight) if (n === 0) socket.destroy();
  }
}
