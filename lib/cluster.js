// A broker's membership of the state shared through Redis (the `redis` option, see
// redis-option.js): joining before its server starts, leaving once its sessions ended.
// Both run in the core; Node is kept alive while either is under way.
'use strict';

const native = require('./native');
const host = require('./host');

// Resolves with the core's cluster handle, or rejects with an Error naming Redis's address.
function joinCluster(nativeManager, connection) {
  const cluster = native.BindingCluster.connect(nativeManager, connection);
  host.hold();
  return new Promise((resolve, reject) => {
    host.registerCluster(
      cluster.key,
      (error) => {
        host.release();
        if (error === undefined) resolve(cluster);
        else reject(new Error(error));
      },
      () => {},
    );
  });
}

// Waits up to `timeoutMs` for buffered events to reach Redis, then leaves.
function leaveCluster(cluster, timeoutMs) {
  host.hold();
  return new Promise((resolve) => {
    host.registerCluster(
      cluster.key,
      () => {},
      () => {
        host.release();
        resolve();
      },
    );
    cluster.close(timeoutMs);
  });
}

module.exports = { joinCluster, leaveCluster };
