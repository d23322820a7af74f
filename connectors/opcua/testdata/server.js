// An OPC UA server for the connectors/opcua tests, on the npm
// `node-opcua-server` package (installed by scripts/ensure-opcua.sh).
//
//   node server.js PORT PKIDIR
//
// Binds 127.0.0.1:PORT and prints {"listening": PORT} once it serves.
// Namespace 2 ("urn:aimdb-flow:test") has an object Machine with the
// variables ns=2;s=Machine/Temp (Double), Machine/Count (Int32),
// Machine/Name (String), Machine/On (Boolean), and a method
// ns=2;s=Machine/Reset (input Int32, output Int32: the input plus one).
// A String variable ns=2;s=Topic/NAME is created on first write or set.
//
// Security: None, Sign and SignAndEncrypt with Basic256Sha256; anonymous
// is allowed unless OPCUA_NO_ANON is set; OPCUA_USER / OPCUA_PASSWORD
// (when set) is the one valid user.
//
// Commands on stdin, one JSON line each, drive odd values:
//   {"set": "Machine/Temp", "type": "Double", "value": 1.5, "status": "BadSensorFailure"}
// Every write a client makes is logged on stdout as
//   {"write": "Machine/Name", "value": ...}.
'use strict';
const readline = require('readline');
const { OPCUAServer } = require('node-opcua-server');
const { Variant, DataType } = require('node-opcua-variant');
const { StatusCodes } = require('node-opcua-status-code');
const { MessageSecurityMode, SecurityPolicy } = require('node-opcua-secure-channel');
const { OPCUACertificateManager } = require('node-opcua-certificate-manager');

const port = Number(process.argv[2]);
const pki = process.argv[3];
const user = process.env.OPCUA_USER || '';
const pass = process.env.OPCUA_PASSWORD || '';

async function main() {
  const serverCertificateManager = new OPCUACertificateManager({
    automaticallyAcceptUnknownCertificate: true,
    rootFolder: pki,
  });
  const server = new OPCUAServer({
    port,
    host: '127.0.0.1',
    hostname: '127.0.0.1',
    resourcePath: '/aimdb',
    securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
    securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
    allowAnonymous: !process.env.OPCUA_NO_ANON,
    serverCertificateManager,
    userManager: { isValidUser: (u, p) => user !== '' && u === user && p === pass },
    maxConnectionsPerEndpoint: 50,
    // 0: every change of a variable is reported (exception-based), none coalesced.
    serverCapabilities: { minSupportedSampleRate: 0 },
  });
  await server.initialize();
  const as = server.engine.addressSpace;
  const ns = as.registerNamespace('urn:aimdb-flow:test');
  const machine = ns.addObject({ organizedBy: as.rootFolder.objects, browseName: 'Machine', nodeId: 's=Machine' });
  const vars = new Map();
  function addVar(parent, name, type, value) {
    const v = ns.addVariable({
      componentOf: parent, browseName: name.split('/').pop(), nodeId: 's=' + name, dataType: type,
      accessLevel: 'CurrentRead | CurrentWrite', userAccessLevel: 'CurrentRead | CurrentWrite',
      minimumSamplingInterval: 0,
    });
    v.minimumSamplingInterval = 0;
    v.setValueFromSource(new Variant({ dataType: DataType[type], value }));
    v.on('value_changed', (dv) => {
      if (dv.statusCode === StatusCodes.Good) {
        let val = dv.value.value;
        if (typeof val === 'bigint') val = String(val);
        console.log(JSON.stringify({ write: name, value: val }));
      }
    });
    vars.set(name, v);
    return v;
  }
  addVar(machine, 'Machine/Temp', 'Double', 0);
  addVar(machine, 'Machine/Count', 'Int32', 0);
  addVar(machine, 'Machine/Name', 'String', '');
  addVar(machine, 'Machine/On', 'Boolean', false);
  const topics = ns.addObject({ organizedBy: as.rootFolder.objects, browseName: 'Topic', nodeId: 's=Topic' });
  for (let i = 0; i < 40; i++) addVar(topics, 'Topic/t' + i, 'String', '');
  const reset = ns.addMethod(machine, {
    browseName: 'Reset', nodeId: 's=Machine/Reset',
    inputArguments: [{ name: 'n', dataType: DataType.Int32 }],
    outputArguments: [{ name: 'r', dataType: DataType.Int32 }],
  });
  reset.bindMethod((args, ctx, cb) => {
    cb(null, { statusCode: StatusCodes.Good, outputArguments: [{ dataType: DataType.Int32, value: args[0].value + 1 }] });
  });

  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let m;
    try { m = JSON.parse(line); } catch (e) { return; }
    const v = vars.get(m.set);
    if (!v) { console.error('no variable ' + m.set); return; }
    const status = m.status ? StatusCodes[m.status] : StatusCodes.Good;
    v.setValueFromSource(new Variant({ dataType: DataType[m.type || 'String'], value: m.value }), status);
  });
  rl.on('close', () => process.exit(0));

  await server.start();
  console.log(JSON.stringify({ listening: port }));
}
main().catch((e) => { console.error(e); process.exit(1); });
