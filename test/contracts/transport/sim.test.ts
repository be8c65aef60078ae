// The Transport contract against the simulated network, free-running on its
// simulated clock so the suite's waits cost no wall time.

import { sleep } from "../../../transport/clock.js";
import { SimNetwork } from "../../../transport/sim/index.js";
import { transportContract } from "./contract.js";

let seed = 1;

transportContract("sim", async () => {
  const network = new SimNetwork({ seed: seed++, servers: 1 });
  const stop = network.clock.autoRun();
  return {
    async connect(name) {
      return network.connect(name);
    },
    async cutLink(t) {
      network.cutLink(t.name);
    },
    async restoreLink(t) {
      network.restoreLink(t.name);
    },
    sleep: (ms) => sleep(network.clock, ms),
    async close() {
      stop();
    },
  };
});
