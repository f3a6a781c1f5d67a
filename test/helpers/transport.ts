/**
 * The port-forward transport the transport-parametrised suites run over:
 * `KUBESOCKS_TEST_TRANSPORT=spdy|websocket` (scripts/test-transports.sh runs
 * them under each); unset, `auto`, which against the simulator (gate on) is
 * the WebSocket tunnel.
 */
import { parseTransport, type TransportChoice } from '../../src/tunnel/transport.js';

export const TEST_TRANSPORT: TransportChoice = parseTransport(process.env.KUBESOCKS_TEST_TRANSPORT || undefined);

/** `--transport X` for a kubesocks process, when a transport was asked for. */
export const TEST_TRANSPORT_ARGS: readonly string[] = TEST_TRANSPORT === 'auto' ? [] : ['--transport', TEST_TRANSPORT];
