// ctq dashboard: refresh the server-rendered parts in place, and send the buttons' actions.
// No framework, no build step: the server renders every number (templates/live.html).
(function () {
  "use strict";

  const flash = document.getElementById("flash");
  const updated = document.getElementById("updated");

  function say(text, isError) {
    flash.textContent = text;
    flash.className = isError ? "error" : "ok";
  }

  async function refresh(part) {
    try {
      const answer = await fetch(part.dataset.refresh, { credentials: "same-origin" });
      if (answer.status === 401) {
        window.location.assign("/login");
        return;
      }
      if (!answer.ok) {
        updated.textContent = "refresh failed: HTTP " + answer.status;
        return;
      }
      part.innerHTML = await answer.text();
      updated.textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) {
      updated.textContent = "refresh failed: " + error.message;
    }
  }

  const parts = document.querySelectorAll("[data-refresh]");
  parts.forEach(function (part) {
    window.setInterval(function () { refresh(part); }, Number(part.dataset.every));
  });

  function refreshAll() {
    parts.forEach(refresh);
  }

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await answer.json().catch(function () { return {}; });
    if (!answer.ok) {
      throw new Error(data.detail || "HTTP " + answer.status);
    }
    return data;
  }

  async function show(id) {
    const answer = await fetch("/dashboard/dead-letters/" + encodeURIComponent(id), {
      credentials: "same-origin",
    });
    if (!answer.ok) {
      throw new Error("HTTP " + answer.status);
    }
    document.getElementById("letter-id").textContent = id;
    document.getElementById("letter-body").textContent = JSON.stringify(await answer.json(), null, 2);
    document.getElementById("letter").showModal();
  }

  const ACTIONS = {
    resume: async function (button) {
      const data = await post("/dashboard/resume", {
        site: button.dataset.site,
        lane: button.dataset.lane,
      });
      const released = data.resumed.reduce(function (n, r) { return n + r.released; }, 0);
      return "Resumed site " + button.dataset.site + " " + button.dataset.lane + " lane: " +
        released + " held job(s) sent again.";
    },
    replay: async function (button) {
      const data = await post("/dashboard/dead-letters/replay", { ids: [button.dataset.id] });
      const job = data.enqueued[button.dataset.id];
      if (job) {
        return "Replayed " + button.dataset.id + " as job " + job + ".";
      }
      const problems = (data.refused[button.dataset.id] || []).map(function (p) {
        return p.field + ": " + p.reason;
      });
      throw new Error("refused: " + problems.join("; "));
    },
    purge: async function (button) {
      if (!window.confirm("Delete dead letter " + button.dataset.id + " for good?")) {
        return null;
      }
      const data = await post("/dashboard/dead-letters/purge", { ids: [button.dataset.id] });
      return "Purged " + data.purged + " dead letter(s).";
    },
    show: async function (button) {
      await show(button.dataset.id);
      return null;
    },
  };

  document.addEventListener("click", async function (event) {
    const button = event.target.closest("button[data-action]");
    if (!button) {
      return;
    }
    button.disabled = true;
    try {
      const message = await ACTIONS[button.dataset.action](button);
      if (message) {
        say(message, false);
        refreshAll();
      }
    } catch (error) {
      say(button.dataset.action + " failed: " + error.message, true);
    } finally {
      button.disabled = false;
    }
  });
})();
