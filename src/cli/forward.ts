/** `kubesocks forward` (being written). */
export async function forward(_args: string[]): Promise<void> {
  throw new Error('kubesocks forward is not available yet');
}
