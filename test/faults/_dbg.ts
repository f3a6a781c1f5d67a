import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRig, echoOnce, waitUntil } from '../helpers/faults-rig.js';
const NS='faults';
const pods=[0,1].map(i=>({name:`echo-${i}`,namespace:NS,labels:{app:'echo'},ip:`10.244.1.${10+i}`,phase:'Running' as const,ready:true,ports:[{name:'echo',containerPort:7,backend:'echo'},{name:'http',containerPort:8080,backend:'http'}]}));
const rig = await startRig({namespaces:[NS],pods,services:[{name:'echo',namespace:NS,selector:{app:'echo'},ports:[{name:'echo',port:7,targetPort:'echo'},{name:'http',port:80,targetPort:'http'}]}]},{proxy:{handshakeTimeoutMs:1500},dialer:{direct:'deny'}});
const u16=(n:number)=>{const b=Buffer.alloc(2);b.writeUInt16BE(n);return b;};
const s5=(h:string,p:number)=>{const n=Buffer.from(h);return Buffer.concat([Buffer.from([5,1,0,3,n.length]),n,u16(p)]);};
const cases: Record<string, Buffer> = {};
for (const name of ['echo.faults','echo-1.faults','nope.faults','x','10.244.1.11']) for (const port of [7,80,8080,9]) {
  cases[`s5 ${name}:${port}`] = Buffer.concat([Buffer.from([5,1,0]), s5(name,port), Buffer.from('payload')]);
  cases[`connect ${name}:${port}`] = Buffer.from(`CONNECT ${name}:${port} HTTP/1.1\r\nHost: ${name}:${port}\r\n\r\nhello`);
  cases[`get ${name}`] = Buffer.from(`GET http://${name}/ HTTP/1.1\r\nHost: ${name}\r\nConnection: keep-alive\r\n\r\n`);
  cases[`post ${name}`] = Buffer.from(`POST http://${name}/p HTTP/1.1\r\nHost: ${name}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
}
for (const [label, data] of Object.entries(cases)) for (const ending of ['fin','wait','vanish'] as const) for (const waitMs of [5, 60]) {
  const socket = connect({host:'127.0.0.1',port:rig.proxyPort,allowHalfOpen:true});
  socket.on('error',()=>{}); socket.on('data',()=>{});
  await once(socket,'connect');
  socket.write(data);
  if (ending==='fin') socket.end();
  if (ending!=='vanish') await Promise.race([once(socket,'close'), sleep(waitMs)]);
  if (ending==='vanish') socket.resetAndDestroy(); else socket.destroy();
  try { await waitUntil(()=>rig.proxy.stats().openSockets===0 && rig.dialer.stats().pairs===0,'x',4000); }
  catch { console.log('LEAK', label, ending, waitMs, JSON.stringify(rig.proxy.stats()), JSON.stringify(rig.dialer.stats())); await waitUntil(()=>rig.proxy.stats().openSockets===0,'y',30000).catch(()=>console.log('  still leaking after 30s')); }
}
console.log('done');
await rig.close();
