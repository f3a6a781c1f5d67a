/**
 * What `kubesocks forward` forwards: a resource (`TYPE/NAME`) and port specs
 * (`[LOCAL:]REMOTE`). The command line parses them (cli/forward-spec.ts);
 * the forwarder and its target only consume them.
 */

export type ForwardKind = 'pod' | 'service' | 'deployment' | 'statefulset' | 'replicaset';

export interface ForwardResource {
  kind: ForwardKind;
  name: string;
}

export interface PortSpec {
  /** 0 = pick a free port. */
  local: number;
  /** A number, or the name of a container port (pods, workloads) or service port (services). */
  remote: number | string;
  /** As written, for messages. */
  text: string;
}
