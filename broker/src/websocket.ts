import type { Server as HttpServer, IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Broker } from './broker.js'

export interface WebSocketListenerOptions {
  /** URL path that upgrades to MQTT. Default `/mqtt`. */
  path?: string
  /** Largest WebSocket message, in bytes. Default 65536 plus framing slack; MQTT's own limit applies inside. */
  maxPayload?: number
}

/**
 * Serves MQTT over WebSocket on an existing HTTP(S) server, behind the same
 * authentication, policy and limits as the TCP listener. Upgrades on any other
 * path are refused, so the API server serves nothing else over WebSocket.
 */
export function attachWebSocketListener (server: HttpServer, broker: Broker, opts: WebSocketListenerOptions = {}): { close (): void } {
  const path = opts.path ?? '/mqtt'
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload ?? 64 * 1024 + 1024, perMessageDeflate: false })
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? ''
    if (url !== path && !url.startsWith(`${path}?`)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      stream.on('error', () => ws.terminate())
      broker.handle(stream, req)
    })
  }
  server.on('upgrade', onUpgrade)
  return {
    close () {
      server.off('upgrade', onUpgrade)
      for (const ws of wss.clients) ws.terminate()
      wss.close()
    },
  }
}
