// The demo page's job buttons: start a task without leaving the page, then
// tell the notification widget what to call the task's progress bar.
(function () {
  "use strict";

  for (const form of document.querySelectorAll("form[data-start-task]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = form.querySelector("[data-job-error]");
      error.hidden = true;
      let answer;
      try {
        // The form's own csrfmiddlewaretoken field carries the CSRF token.
        const response = await fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          credentials: "same-origin",
        });
        const json = (response.headers.get("Content-Type") || "").includes("json");
        answer = json ? await response.json() : { error: "The job could not be started." };
      } catch (failure) {
        answer = { error: "The server could not be reached. Try again in a moment." };
      }
      if (answer.task_id) {
        window.notifications.track(answer.task_id, form.dataset.title);
      } else {
        error.textContent = answer.error;
        error.hidden = false;
      }
    });
  }
})();
