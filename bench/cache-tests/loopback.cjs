// bench/cache-tests/loopback.cjs: preloaded (node --require) into the suite's
// origin server, whose server.listen(port) takes no host and so would listen
// on every interface. A listen call given only a port (a number, or digits
// in a string, as the npm_config_port variable arrives) is bound to
// 127.0.0.1 instead. Nothing else changes.
'use strict'
const net = require('net')

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const port = args[0]
  const portOnly = typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port))
  if (portOnly && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, args)
}
